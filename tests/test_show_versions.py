from sklearn_tser import show_versions


def test_show_versions_names_packages_threads_and_cuda(capsys):
    show_versions()
    out = capsys.readouterr().out
    for name in ("sklearn-tser", "scikit-learn", "torch", "skorch", "librosa"):
        assert f"{name}: " in out
    assert "torch CPU threads: " in out and "CUDA: " in out
