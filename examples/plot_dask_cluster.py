"""
==================================================
Grid search and cross-validation on a Dask cluster
==================================================

:class:`~sklearn.model_selection.GridSearchCV` and
:func:`~sklearn.model_selection.cross_val_score` run their fits through joblib,
and joblib's Dask backend runs them on the workers of a Dask cluster: each fit
of the pipeline is a task, on the worker's own CPU cores or GPU. The results
are those of a serial run: every fit draws its random numbers from generators
seeded by ``random_state``, wherever it runs.

This example needs ``pip install "sklearn-tser[dask]"``. It starts a small
local cluster on 127.0.0.1, so that it runs anywhere; connecting to a remote
cluster is one line (below). :ref:`scale` says more: what is sent to the
workers, threads and GPUs. The clips are synthetic
(:func:`~sklearn_tser.datasets.make_emotional_speech`, not speech) and the
network tiny, so it runs in well under a minute on a CPU.
"""

# %%
# Data
# ----
# 60 short clips of three emotions, six synthetic speakers, as a list of
# waveforms. A list of audio file paths works the same way, and is lighter to
# send (see :ref:`scale`).
from sklearn_tser.datasets import make_emotional_speech

speech = make_emotional_speech(
    n_samples=60,
    n_classes=3,
    n_speakers=6,
    min_duration=0.5,
    max_duration=1.0,
    random_state=0,
)
X, y, speakers = speech.data, speech.target, speech.speaker
print(f"{len(X)} clips; emotions: {', '.join(speech.target_names)}")

# %%
# A cluster
# ---------
# Two workers of one thread each, which talk to the scheduler and to this
# client over TCP on 127.0.0.1, as on a real cluster. ``processes=False`` keeps
# them in this process (as threads), so that the script runs as it is: worker
# processes, the default, need the code that starts them under
# ``if __name__ == "__main__":`` in a script (Python starts them with *spawn*,
# which imports the script again).
from dask.distributed import Client, LocalCluster

cluster = LocalCluster(
    n_workers=2,
    threads_per_worker=1,
    processes=False,
    protocol="tcp",
    host="127.0.0.1",
    dashboard_address=None,
)
client = Client(cluster)
print(client)

# %%
# A remote cluster is reached by the address of its scheduler (started with
# ``dask scheduler`` on one machine and ``dask worker tcp://host:8786`` on
# each of the others, where sklearn-tser is installed too)::
#
#     client = Client("tcp://scheduler-host:8786")
#
# On a machine with GPUs, ``dask_cuda`` starts one worker per GPU and shows each
# worker only its own GPU; ``device="auto"`` (the default) trains there::
#
#     from dask_cuda import LocalCUDACluster
#
#     client = Client(LocalCUDACluster())

# %%
# The pipeline
# ------------
# A small network, trained for a few epochs. ``n_threads`` is the number of
# torch threads of each fit: keep one per worker thread and core.
from sklearn.pipeline import Pipeline

from sklearn_tser import EmotionEmbeddingClassifier, LogMelTransformer

pipe = Pipeline(
    [
        ("mel", LogMelTransformer(n_mels=32)),
        (
            "clf",
            EmotionEmbeddingClassifier(
                n_networks=1,  # default: 2, an ensemble of two
                n_layers=6,  # ResNet-6 (default: ResNet-11)
                width=8,
                embedding_dim=16,
                pretrain_epochs=6,
                triplet_epochs=2,
                crop_frames=50,
                n_threads=1,  # default: 1
                random_state=0,
            ),
        ),
    ]
)

# %%
# Grid search on the cluster
# --------------------------
# Inside ``parallel_config(backend="dask")``, the search sends its fits to the
# workers. ``scatter=[X, y]`` sends the clips and labels to every worker once;
# the tasks then refer to them, instead of carrying a copy each. Folds keep
# speakers apart.
from joblib import parallel_config
from sklearn.model_selection import GridSearchCV, StratifiedGroupKFold

cv = StratifiedGroupKFold(n_splits=3, shuffle=True, random_state=0)
search = GridSearchCV(
    pipe, {"clf__embedding_dim": [8, 16]}, cv=cv, scoring="f1_macro", n_jobs=-1
)
with parallel_config(backend="dask", scatter=[X, y]):
    search.fit(X, y, groups=speakers)

for params, mean, std in zip(
    search.cv_results_["params"],
    search.cv_results_["mean_test_score"],
    search.cv_results_["std_test_score"],
    strict=True,
):
    print(f"{params}: macro F1 {mean:.3f} ± {std:.3f}")
print("best:", search.best_params_)

# %%
# The same scores as a serial run
# -------------------------------
# Cross-validation on the cluster, then here, one fit after the other.
import numpy as np
from sklearn.model_selection import cross_val_score

with parallel_config(backend="dask", scatter=[X, y]):
    on_cluster = cross_val_score(pipe, X, y, groups=speakers, cv=cv, n_jobs=-1)
serial = cross_val_score(pipe, X, y, groups=speakers, cv=cv, n_jobs=1)
print("accuracy on the cluster:", np.round(on_cluster, 3))
print("accuracy, serial:       ", np.round(serial, 3))
print("identical:", np.array_equal(on_cluster, serial))

# %%
# Close the client and the cluster when done.
client.close()
cluster.close()
