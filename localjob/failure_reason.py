"""The one line that explains a failed local job, from the toolkit's failure file or a log.

SageMaker reports a failed job by its FailureReason; locally it comes from what the toolkit
wrote to output/failure, or, when that holds nothing useful, from the host's log: the script's
own `error: ...` line, torchrun's root-cause block, pip's last error (the bundle could not
install), or a raw exception line.
"""

from __future__ import annotations

import re

from training import contract


def summarize_failure(text: str) -> str:
    """The line that explains a toolkit failure file.

    The toolkit writes `ExecuteUserScriptError: / ExitCode N / ErrorMessage "..." / Command
    "..."`, with the script's captured stderr appended right after the command; the script's
    own last error line is the useful part, then the ErrorMessage, then the exit code.
    """
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return text.strip()
    summary = _summarize(lines)
    hint = contract.explain_network_failure(text)
    return f"{summary} ({hint})" if hint and hint not in summary else summary


#: pip's own error lines: the toolkit's install step failed (a requirement not in the bundle).
_PIP_ERROR = "ERROR: "
_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(?:Error|Exception): \S")


def has_details(text: str) -> bool:
    lines = [line.strip() for line in text.splitlines()]
    return "Root Cause" in text or any(
        line.startswith(("error: ", _PIP_ERROR)) or _EXCEPTION_LINE.match(line) for line in lines
    )


def _torchrun_root_cause(lines: list[str]) -> tuple[str, bool] | None:
    """torchrun's `Root Cause (first observed failure)` block: which rank, how it ended, and
    whether a signal ended it."""
    try:
        start = next(i for i, line in enumerate(lines) if line.startswith("Root Cause"))
    except StopIteration:
        return None
    fields: dict[str, str] = {}
    for line in lines[start + 1 : start + 12]:
        key, sep, value = line.partition(":")
        if sep and key.strip() in ("rank", "exitcode", "traceback") and key.strip() not in fields:
            fields[key.strip()] = value.strip().rstrip('"')
    if "rank" not in fields:
        return None
    rank = f"rank {fields['rank']}"
    code = fields.get("exitcode", "").split(" (pid")[0]
    signalled = fields.get("traceback", "").startswith("Signal")
    cause = f"{rank} exited with {code}" if code else rank
    if signalled:
        cause += f": {fields['traceback']}"
    return cause, signalled


def _summarize(lines: list[str]) -> str:
    root = _torchrun_root_cause(lines)
    errors = [line[len("error: ") :] for line in lines if line.startswith("error: ")]
    if root and (root[1] or not errors):  # killed by a signal: the script said nothing
        return root[0]
    if errors:  # the script's own one-line error, tagged with torchrun's root-cause rank
        tagged = root and not errors[-1].startswith(("rank ", "process group"))
        return f"{root[0].split(' exited')[0]}: {errors[-1]}" if tagged else errors[-1]
    pip_errors = [line[len(_PIP_ERROR) :] for line in lines if line.startswith(_PIP_ERROR)]
    if pip_errors:  # the script never ran: pip's last word says which requirement is missing
        return f"installing requirements.txt failed: {pip_errors[-1]}"
    exceptions = [line for line in lines if _EXCEPTION_LINE.match(line)]
    if exceptions:
        return exceptions[-1][:500]  # a raw log: torchrun's own traceback (script never ran)
    last = lines[-1]
    if last.startswith('Command "') and '"' in last[len('Command "') :]:
        tail = last[last.index('"', len('Command "')) + 1 :].strip()
        if tail:
            return tail
    for line in lines:
        if line.startswith("ErrorMessage ") and line != 'ErrorMessage ""':
            return line[len("ErrorMessage ") :].strip().strip('"')
    exit_code = next((line for line in lines if line.startswith("ExitCode ")), None)
    return exit_code or last
