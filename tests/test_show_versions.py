from sklearn_tser import _kernels, show_versions


def test_show_versions_names_packages_and_the_kernels(capsys):
    show_versions()
    out = capsys.readouterr().out
    for name in ("sklearn-tser", "scikit-learn", "torch", "skorch", "librosa"):
        assert f"{name}: " in out
    built = _kernels.load() is not None
    assert ("log-mel C kernels: built" in out) == built
    assert ("log-mel C kernels: not built" in out) == (not built)
    assert "torch CPU threads: " in out and "CUDA: " in out
