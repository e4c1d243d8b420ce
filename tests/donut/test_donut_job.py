"""`training.config=donut` from a synthesized stack: 2 simulated hosts through the real toolkit,
offline mode (tiny random model, synthetic receipts), in image stand-ins with no network and no
transformers; exactly one model, and it loads with from_pretrained."""

from __future__ import annotations

import io
import json
import tarfile

import pytest

from localjob.job import LocalJobSpec, LocalTrainingJob
from localjob.script_mode import script_mode_hyperparameters
from tests import timing
from tests.infra.conftest import synthesize
from training import contract

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

METRICS = ["train_loss", "val_loss", "val_edit_distance", "val_ted_accuracy", "val_f1"]
TINY = {
    "data.init_args.image_size": "[64, 48]",
    "data.init_args.max_length": "96",
    "data.init_args.synthetic_samples": "16",
    "batch_size": "4",
    "epochs": "2",
    "lr": "1e-3",
}


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    result = synthesize(
        tmp_path_factory.mktemp("cdk-donut"),
        {
            "training.config": "donut",
            "training.metrics": METRICS,
            "training.instance_type": "ml.m5.xlarge",
            "training.instance_count": "2",
            "training.hyperparameters": json.dumps(TINY),
        },
    )
    assert result.error is None, result.error
    return result


def _bundle(synth) -> bytes:
    family = synth.stack.config.image_family
    return (synth.outdir / ".sourcedir" / family / "sourcedir.tar.gz").read_bytes()


def test_bundle_carries_transformers_for_the_image_and_the_rehearsal(synth):
    with tarfile.open(fileobj=io.BytesIO(_bundle(synth)), mode="r:gz") as tar:
        names = tar.getnames()
        requirements = tar.extractfile("requirements.txt").read().decode()
    assert "transformers==5.23.0 --hash=sha256:" in requirements
    regex = [n for n in names if n.startswith("wheels/regex-")]
    assert sorted(n.split("-")[2] for n in regex) == ["cp311", "cp313"]  # image's + rehearsal's
    line = next(x for x in requirements.splitlines() if x.startswith("regex=="))
    assert line.count("--hash=sha256:") == 2


def test_donut_trains_on_two_hosts_and_exports_one_model(synth, tmp_path):
    bundle = tmp_path / "sourcedir.tar.gz"
    bundle.write_bytes(_bundle(synth))
    settings = synth.stack.workflow.settings
    hps = dict(settings.default_hyperparameters)
    assert hps["config"] == "donut"
    hps.update(
        script_mode_hyperparameters(
            submit_directory=str(bundle),
            job_name="donut-offline",
            instance_type=settings.instance_type,
            backend=settings.backend,
        )
    )
    spec = LocalJobSpec(
        job_name="donut-offline",
        hyperparameters=hps,
        instance_type=settings.instance_type,
        instance_count=2,
        image_family=synth.stack.config.image_family,
        network_isolation=True,
    )
    job = LocalTrainingJob(spec, tmp_path / "job")
    job.start()
    assert job.wait(timing.bound(600)) == [0, 0], job.failure_reason()

    hosts = tmp_path / "job" / "hosts"
    model_dir = hosts / "algo-1" / "model"
    assert not any((hosts / "algo-2" / "model").iterdir())
    names = {p.name for p in model_dir.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", contract.MODEL_INFO_FILE} <= names
    assert all(m in job.metrics() for m in METRICS[1:])

    from transformers import DonutProcessor, VisionEncoderDecoderModel

    from training.tasks.donut import receipts

    model = VisionEncoderDecoderModel.from_pretrained(model_dir).eval()
    processor = DonutProcessor.from_pretrained(model_dir)
    pixels = processor.image_processor(
        receipts.render(receipts.receipt(0)), return_tensors="pt"
    ).pixel_values
    assert tuple(pixels.shape[-2:]) == (64, 48)
    out = model.generate(
        pixel_values=pixels,
        decoder_input_ids=pixels.new_full((1, 1), model.config.decoder_start_token_id).long(),
        max_length=96,
    )
    assert processor.tokenizer.decode(out[0]).startswith("<s_cord-v2>")
