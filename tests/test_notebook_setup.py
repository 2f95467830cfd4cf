"""The chapters' setup cell: device, expected time, the GPU check and fetching on Colab."""
import sys

import pytest
import torch

from bierlib.book import notebook
from bierlib.book.notebook import chapter_setup, expected_time, measured_seconds


def test_quick_profile_prints_device_and_measured_time(capsys, fake_omniglot, monkeypatch):
    monkeypatch.setenv("BIERLIB_DATA", str(fake_omniglot))
    monkeypatch.setattr(notebook, "calibrate", lambda device="cpu": 0.25)
    device = chapter_setup("02_lifted", "quick")
    out = capsys.readouterr().out
    assert isinstance(device, torch.device) and "profile quick" in out
    seconds = measured_seconds("02_lifted")
    assert seconds is not None, "bierlib/book/chapter_times.json has no time for 02_lifted"
    speed = 0.25 / notebook.chapter_times()["calibration_seconds"]
    if device.type == "cpu":
        assert f"about {notebook._minutes(seconds * speed)} here" in out
        assert f"this CPU takes {speed:.2f}x its time per training step" in out


def test_expected_time_is_the_cold_time_scaled_by_the_measured_speed():
    seconds = measured_seconds("03_bier")
    cpu = torch.device("cpu")
    assert f"about {notebook._minutes(2 * seconds)} here" in expected_time("03_bier", "quick",
                                                                           cpu, speed=2.0)
    assert notebook._minutes(45) == "45 s" and notebook._minutes(150) == "2.5 min"
    reference = notebook.chapter_times()["calibration_seconds"]
    assert notebook.speed_factor(seconds=3 * reference) == pytest.approx(3.0)
    assert "at most" in expected_time("03_bier", "quick", torch.device("cuda"))


def test_calibration_measures_a_training_step_and_leaves_the_random_state_alone():
    torch.manual_seed(5)
    state = torch.get_rng_state()
    seconds = notebook.calibrate(steps=2)
    assert 0 < seconds < 10
    assert torch.equal(torch.get_rng_state(), state)


def test_paper_profile_without_gpu_refuses_clearly(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="needs a CUDA GPU.*Change runtime type > GPU"):
        chapter_setup("03_bier", "paper")
    assert "not measured yet" in expected_time("03_bier", "paper", torch.device("cuda"))
    assert "no run time has been measured" in expected_time("99_unknown", "quick",
                                                            torch.device("cpu"))


def test_missing_data_is_fetched_only_when_asked(monkeypatch, tmp_path):
    monkeypatch.setenv("BIERLIB_DATA", str(tmp_path))
    calls = []
    monkeypatch.setattr("bierlib.book.notebook._fetch", calls.append)
    chapter_setup("01_contrastive", "quick", fetch_missing=False)
    assert calls == []
    monkeypatch.setitem(sys.modules, "google.colab", object())  # as on Colab
    chapter_setup("01_contrastive", "quick")
    assert calls == ["omniglot"]


def test_missing_one_shot_runs_are_fetched_on_colab(monkeypatch, fake_omniglot):
    """Omniglot present but not the one-shot runs (Chapter 6): the same script fetches them."""
    monkeypatch.setenv("BIERLIB_DATA", str(fake_omniglot))
    calls = []
    monkeypatch.setattr("bierlib.book.notebook._fetch", calls.append)
    monkeypatch.setitem(sys.modules, "google.colab", object())
    chapter_setup("06_comparison", "quick")
    assert calls == ["omniglot"]
