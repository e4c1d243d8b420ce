"""The training code as a CDK file asset: one reproducible sourcedir.tar.gz, uploaded as-is.

The archive carries the wheels its image family lacks (core/wheelhouse.py), checked at synth
against the image's Python; the job receives it as the `code` input channel.

Built at synth into `<cloud assembly>/.sourcedir/<family>/sourcedir.tar.gz` and staged by
`aws_s3_assets.Asset` (packaging FILE, key `<sha256-of-bytes>.gz`), so the asset hash follows
the bytes: `touch` leaves it alone, any code change moves it.
"""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct

from core import wheelhouse
from core.sourcedir import ARCHIVE_NAME, REPO_ROOT, build_sourcedir, requirements_dir


class SourceBundle(Construct):
    """`asset`, `s3_uri` (s3://bucket/key: what `sagemaker_submit_directory` needs), `sha256`."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        image_family: str,
        python: str | None = None,
        root: Path = REPO_ROOT,
        build_dir: Path | None = None,
        project: Path | None = None,
        config: str = "digits",
    ) -> None:
        super().__init__(scope, construct_id)
        if build_dir is None:
            outdir = Path(cdk.Stage.of(self).outdir if cdk.Stage.of(self) else ".")
            build_dir = outdir / ".sourcedir" / image_family
        archive = Path(build_dir) / ARCHIVE_NAME
        requirements = requirements_dir(project, config, root)
        house = wheelhouse.build(image_family, python=python, project=requirements)
        self.sha256 = build_sourcedir(
            archive,
            image_family=image_family,
            root=root,
            wheelhouse=house,
            project=project,
            config=config,
        )
        self.asset = s3_assets.Asset(
            self,
            "Asset",
            path=str(archive),
            asset_hash_type=cdk.AssetHashType.CUSTOM,
            asset_hash=self.sha256,
        )
        self.bucket = self.asset.bucket
        self.object_key = self.asset.s3_object_key
        self.s3_uri: str = self.bucket.s3_url_for_object(self.object_key)
        #: The object's name in the code channel (/opt/ml/input/data/code/<file_name>).
        if cdk.Token.is_unresolved(self.object_key):
            raise ValueError("the code asset's object key must be known at synth")
        self.file_name = self.object_key.rsplit("/", 1)[-1]
