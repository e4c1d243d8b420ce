"""`local-train` rehearses the deployment's image family (trainops/rehearsal.py), and refuses at
once a project that imports an image package this machine cannot stand in for."""

from __future__ import annotations

from pathlib import Path

import pytest

from trainops.cli import main
from trainops.local_train import run_local_training
from trainops.rehearsal import RehearsalError, from_deployment, unavailable


def test_the_default_cdk_json_rehearses_the_smddp_family() -> None:
    rehearsal = from_deployment()
    assert (rehearsal.image_family, rehearsal.backend, rehearsal.instance_type) == (
        "smddp",
        "smddp",
        "ml.p4d.24xlarge",
    )
    assert rehearsal.describe() == (
        "rehearsing image family smddp (pytorch-training 2.3.0 (SMDDP 2.3.0), Python 3.11, "
        "Ubuntu 20.04), backend smddp on ml.p4d.24xlarge, from cdk.json"
    )


def test_context_overrides_and_instance_type_as_deploy_and_start_take_them() -> None:
    torchrun = from_deployment(["training.backend=torchrun"])
    assert (torchrun.image_family, torchrun.backend) == ("current", "torchrun")
    assert torchrun.source == "cdk.json -c training.backend=torchrun"
    g5 = from_deployment(["training.instance_type=ml.g5.12xlarge"], "ml.g5.48xlarge")
    assert (g5.image_family, g5.instance_type) == ("current", "ml.g5.48xlarge")


@pytest.mark.parametrize(
    ("context", "instance_type", "line"),
    [
        (["training.backend"], None, "-c 'training.backend': expected KEY=VALUE"),
        (
            [],
            "ml.p5.48xlarge",
            "backend='smddp': smddp runs only on ml.p4d.24xlarge, ml.p4de.24xlarge, "
            "ml.p3dn.24xlarge, not ml.p5.48xlarge (SMDDP does not support P5",
        ),
    ],
)
def test_a_bad_configuration_is_one_line(context, instance_type, line) -> None:
    with pytest.raises(RehearsalError) as err:
        from_deployment(context, instance_type)
    assert str(err.value).startswith(line)


def _torchvision_project(tmp_path: Path) -> Path:
    project = tmp_path / "vision"
    (project / "vis").mkdir(parents=True)
    (project / "vis" / "__init__.py").write_text("")
    (project / "vis" / "model.py").write_text(
        "import lightning.pytorch as L\nfrom torchvision.models import resnet18\n"
    )
    (project / "train.yaml").write_text("model:\n  class_path: vis.model.Net\n")
    return project


def test_a_torchvision_project_is_refused_at_once(tmp_path: Path, capsys) -> None:
    assert "torchvision" in unavailable("smddp") and "torchvision" in unavailable("current")
    project = _torchvision_project(tmp_path)
    root = tmp_path / "runs"
    with pytest.raises(RehearsalError) as err:
        run_local_training(source_dir=project, config="train.yaml", root=root)
    assert str(err.value).startswith(
        f"{project}/vis/model.py imports torchvision: the current image ships "
        "torchvision==0.25.0, which this rehearsal cannot provide"
    )
    assert not root.exists()  # nothing built, nothing started
    code = main(["local-train", "--source-dir", str(project), "--config", "train.yaml"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert lines[0].startswith("rehearsing image family smddp")
    assert lines[-1].startswith(f"error: {project}/vis/model.py imports torchvision: the smddp")
    assert "torchvision==0.18.0" in lines[-1]
