"""The one error type of the notebook path: one line that says what to do."""


class SdkError(ValueError):
    """A bad override, a missing stack or emulator, an SDK that is not installed."""
