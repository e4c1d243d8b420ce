"""LightningCLI of the user's Lightning, owned by the runner through its public hooks only.

The task's config is parsed by the LightningCLI of the package the user's classes derive from,
so every key and value is checked against the classes' signatures as `python cli.py fit` would
check it. The runner owns the rest:
- `parser_kwargs={"exit_on_error": False}`: a bad key or value raises jsonargparse's
  ArgumentError instead of printing usage and exiting;
- `before_instantiate_classes`: the runner's learning rate and resolved config (`prepare`);
- `instantiate_classes`: Lightning's own (a class that fails to build from values the parser
  could not type is one line: `explain`), or nothing at all for a check;
- `instantiate_trainer(**kwargs)` and `trainer_defaults["callbacks"]`: the runner's Trainer
  arguments win over the config's, and its callbacks run after the config's (`trainer`).
Every hook exists with the same meaning in Lightning 2.2.5 through 2.6.6 (`lightning.pytorch`
and `pytorch_lightning`) with jsonargparse 4.27.7 through 4.45.0, the two image families' pins
(docs/facts.md; 2.2.5 lacks `parser_class`, so the parser is Lightning's own);
tests/byo/test_runner_cli.py fails if one goes.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from training import lightning_flavour
from training.config_check import OWNED_TRAINER_KEYS
from training.errors import ConfigError, TrainingError


@dataclass(frozen=True)
class RunnerTrainer:
    """The runner's part of the Trainer: `arguments` replace the config's trainer keys, and
    `callbacks` run after the config's own."""

    arguments: dict[str, Any]
    callbacks: list[Any] = field(default_factory=list)


#: The runner's part, from the task (its model and data module built) and the config's trainer
#: arguments (built too: the user's logger, callbacks, ...).
TrainerFactory = Callable[[Any, Mapping[str, Any]], RunnerTrainer]


def _classes(
    pl: Any,
    task: Any,
    prepare: Callable[[Any, Any], None],
    explain: Callable[[BaseException], str],
    build: bool,
    trainer: TrainerFactory | None,
) -> type:
    cli = lightning_flavour.submodule(pl, "cli")

    class RunnerCLI(cli.LightningCLI):  # type: ignore[misc, name-defined]
        def before_instantiate_classes(self) -> None:
            prepare(self.parser, self.config)

        def instantiate_classes(self) -> None:
            if not build:  # a check instantiates nothing
                return
            try:
                super().instantiate_classes()
            except TrainingError:
                raise
            except Exception as err:
                if hasattr(self, "config_init"):  # the classes were built: a later step failed
                    raise
                raise ConfigError(explain(err)) from None  # untyped values the parser let through

        def instantiate_trainer(self, **kwargs: Any) -> Any:
            task.model, task.datamodule = self.model, self.datamodule
            if trainer is not None:
                part = trainer(task, self.config_init["trainer"])  # run=False: no subcommand
                if missing := [key for key in OWNED_TRAINER_KEYS if key not in part.arguments]:
                    raise RuntimeError(f"the runner's Trainer arguments leave out {missing}")
                self.trainer_defaults = {**self.trainer_defaults, "callbacks": part.callbacks}
                kwargs = {**kwargs, **part.arguments}
            task.trainer = super().instantiate_trainer(**kwargs)
            return task.trainer

    return RunnerCLI


def run_cli(
    pl: Any,
    task: Any,
    args: list[str],
    *,
    seed: int | bool,
    prepare: Callable[[Any, Any], None],
    explain: Callable[[BaseException], str],
    build: bool,
    trainer: TrainerFactory | None = None,
) -> None:
    """Parse `args` with the task's LightningCLI; with `build`, build the model, the data
    module and the Trainer (with the runner's part from `trainer`) into `task` (`model`,
    `datamodule`, `trainer`). A bad key or value raises jsonargparse.ArgumentError."""
    cli_class = _classes(pl, task, prepare, explain, build, trainer)
    argv, sys.argv = sys.argv, sys.argv[:1]  # the job's argv is the runner's, not the CLI's
    try:
        cli_class(
            pl.LightningModule,
            pl.LightningDataModule,
            subclass_mode_model=True,
            subclass_mode_data=True,
            save_config_callback=None,
            seed_everything_default=seed,
            run=False,
            args=args,
            parser_kwargs={"exit_on_error": False},
        )
    finally:
        sys.argv = argv
