"""The table of differences from the authors' code: well-formed, rendered, and true to bierlib's
settings."""
import dataclasses

import pytest

from bierlib import deviations
from bierlib.deviations import DEVIATIONS, Deviation
from bierlib.experiments import ExperimentConfig


def test_table_is_well_formed_and_covers_each_method():
    deviations.check()
    for method in deviations.METHOD_REPOSITORY:
        assert deviations.deviations([method]), method
    for repo, commit in deviations.REPOSITORIES.values():
        assert len(commit) == 40 and "/" in repo


@pytest.mark.parametrize("change, match", [
    ({"status": "unknown"}, "status must be one of"),
    ({"methods": ("lifted",)}, "methods must be among"),
    ({"methods": ("bier", "margin")}, "different repositories"),
    ({"sources": ("train_bier.py line 3",)}, "sources must be"),
    ({"why": " "}, "why is empty"),
    ({"status": "kept", "setting": "lr_anneal=2"}, "status 'kept' with setting"),
])
def test_malformed_rows_are_refused(change, match):
    row = dataclasses.replace(DEVIATIONS[0], **change)
    with pytest.raises(ValueError, match=match):
        deviations.check([row])


def test_every_named_setting_is_a_setting_of_bierlib():
    """A row's setting is what a reader passes to ExperimentConfig: each must be accepted."""
    for d in DEVIATIONS:
        if d.status != "setting":
            continue
        method = "divide_and_conquer" if "divide_and_conquer" in d.methods else d.methods[-1]
        settings = eval(f"dict({d.setting})")  # "name=value, name=value"
        profile = "paper" if {"embedding_dropout", "augmentation"} & set(settings) else "quick"
        extra = {"frozen_batchnorm": True} if "train_batchnorm_affine" in settings else {}
        ExperimentConfig(method, profile, **extra, **settings)


def test_markdown_links_the_pinned_sources():
    text = deviations.markdown(["abier"])
    assert text.startswith("| What | The authors' code |")
    assert ("https://github.com/mop/bier/blob/cd04edf64980484c00e561682ede97969234d81e/"
            "train_bier.py#L275-L277") in text
    assert "divide" not in text and "Read at: mop/bier at cd04edf." in text
    assert text.count("\n|") == len(deviations.deviations(["abier"])) + 1
    with pytest.raises(ValueError, match="methods must be among"):
        deviations.markdown(["lifted"])
    assert deviations.show(["margin"]).data == deviations.markdown(["margin"])
    assert isinstance(DEVIATIONS[0], Deviation)
