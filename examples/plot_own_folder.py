"""
=================================
Bringing your own folder of clips
=================================

Any corpus laid out as one sub-folder of audio files per emotion works with
:func:`~sklearn_tser.datasets.load_emotion_folder` and with the command line's
``--dataset folder``::

    my_corpus/
        angry/    clip01.wav  clip07.flac ...
        neutral/  clip02.wav ...
        sad/      speaker3/clip11.wav ...   (nested folders are fine)

Files of any sample rate and channel count are read (WAV, FLAC, OGG, ...). This
example writes such a folder of synthetic clips to a temporary directory, then
evaluates and uses a model on it, from Python and from the command line.
"""

# %%
# Write a small corpus
# --------------------
# 60 synthetic clips (not speech) of three emotions, as WAV files.
import tempfile
from pathlib import Path

import soundfile as sf

from sklearn_tser.datasets import load_emotion_folder, make_emotional_speech

root = Path(tempfile.mkdtemp()) / "my_corpus"
speech = make_emotional_speech(n_samples=60, n_classes=3, random_state=0)
for k, (clip, emotion) in enumerate(zip(speech.data, speech.target, strict=True)):
    (root / emotion).mkdir(parents=True, exist_ok=True)
    sf.write(root / emotion / f"clip{k:03d}.wav", clip, 16000)
print(sorted(p.name for p in root.iterdir()))

# %%
# Load it and cross-validate
# --------------------------
# ``data`` holds the file paths; the pipeline decodes them.
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import Pipeline

from sklearn_tser import EmotionEmbeddingClassifier, LogMelTransformer

corpus = load_emotion_folder(root)
print(corpus.DESCR)
pipe = Pipeline(
    [
        ("mel", LogMelTransformer()),
        (
            "clf",
            EmotionEmbeddingClassifier(
                n_networks=1,  # default: 2, an ensemble of two
                n_layers=6,
                width=16,
                embedding_dim=32,
                pretrain_epochs=8,
                triplet_epochs=4,
                random_state=0,
            ),
        ),
    ]
)
cv = StratifiedKFold(3, shuffle=True, random_state=0)
scores = cross_val_score(pipe, corpus.data, corpus.target, cv=cv)
print(f"accuracy: {scores.mean():.3f} ± {scores.std():.3f}")

# %%
# The folder has no speaker information, so these folds mix speakers and are
# optimistic for new speakers. If you know who speaks in each clip, pass the
# speakers as ``groups`` with a grouped splitter instead, e.g.
# ``cross_val_score(pipe, X, y, groups=speakers, cv=GroupKFold(5))``.
#
# Label new files
# ---------------
pipe.fit(corpus.data, corpus.target)
new_files = list(corpus.filenames[:3])
for f, label, proba in zip(
    new_files, pipe.predict(new_files), pipe.predict_proba(new_files), strict=True
):
    print(Path(f).name, label, proba.round(2))

# %%
# The same from the command line
# ------------------------------
# ``sklearn-tser evaluate`` cross-validates (``--output`` writes predictions,
# figures and a model), ``train`` saves a model and ``predict`` labels files.
# Here run with ``python -m sklearn_tser``, which is the same command.
import subprocess
import sys

small = ["--param", "n_layers=6", "--param", "width=16", "--param", "embedding_dim=32"]
small += ["--param", "pretrain_epochs=8", "--param", "triplet_epochs=4"]
model = root.parent / "model.safetensors"


def sklearn_tser(*args):
    """Run the sklearn-tser command and print what it prints."""
    command = [sys.executable, "-m", "sklearn_tser", *map(str, args)]
    print("$ sklearn-tser", " ".join(map(str, args)))
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    print(done.stdout)


sklearn_tser("train", "--dataset", "folder", "--data", root, "-o", model, *small)
sklearn_tser("predict", model, *new_files)
sklearn_tser("predict", model, new_files[0], "--json")
