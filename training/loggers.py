"""The Trainer's loggers: the CSV log in the output data, plus TensorBoard event files where
SageMaker uploads them while the job runs (TensorBoardOutputConfig.LocalPath).

A user's own `trainer.logger` in the config is kept; TensorBoard is added beside it unless it is
a TensorBoardLogger already. `logger: false` turns logging off, TensorBoard included. The event
files go to `<output>/tensorboard` (= contract.TENSORBOARD_DIR on SageMaker, wherever the
toolkit's base dir is), which is outside `output/data` (the CSV's place, uploaded at the end).
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

from training import contract
from training.lightning_flavour import submodule


def tensorboard_dir(output_data_dir: Path) -> Path:
    """`/opt/ml/output/data` -> `/opt/ml/output/tensorboard` (same for a moved base dir)."""
    return output_data_dir.parent / Path(contract.TENSORBOARD_DIR).name


def loggers_for(pl: ModuleType, user_logger: Any, output_data_dir: Path) -> Any:
    """What `Trainer(logger=...)` gets: None/True -> CSV + TensorBoard; False -> False; the
    user's logger(s) -> theirs + TensorBoard (unless they brought a TensorBoardLogger)."""
    if user_logger is False:
        return False
    loggers_mod = submodule(pl, "loggers")
    if user_logger in (None, True):
        mine = [loggers_mod.CSVLogger(save_dir=str(output_data_dir), name="lightning_logs")]
    else:
        mine = list(user_logger) if isinstance(user_logger, (list, tuple)) else [user_logger]
    if not any(isinstance(each, loggers_mod.TensorBoardLogger) for each in mine):
        # name="" and version="": event files directly under the uploaded folder, so the
        # job's S3 prefix is a TensorBoard logdir as it is.
        mine.append(
            loggers_mod.TensorBoardLogger(
                save_dir=str(tensorboard_dir(output_data_dir)), name="", version=""
            )
        )
    return mine
