"""batchsms: a contact sheet in, correct SMS messages out, each sent exactly once.

The public API (see :mod:`batchsms.api`): :func:`check_sheet`, :func:`check_frame`,
:func:`write_outputs` (the report and the preview), :func:`send_sheet`, with :class:`Options`,
:class:`SendOptions` and a :class:`Target` from :func:`target_from_config`.
"""

__version__ = "0.1.0"

from .api import (  # noqa: E402 - the version first: the CLI reads it without the rest
    FrameCheck,
    Options,
    SendOptions,
    SendOutcome,
    SendPlan,
    Target,
    check_frame,
    check_sheet,
    send_sheet,
    target_from_config,
    write_outputs,
)
from .codes import Severity, Status  # noqa: E402
from .errors import BatchSmsError  # noqa: E402
from .report import Issue, Report  # noqa: E402

__all__ = [
    "BatchSmsError", "FrameCheck", "Issue", "Options", "Report", "SendOptions", "SendOutcome", "SendPlan",
    "Severity", "Status", "Target", "check_frame", "check_sheet", "send_sheet", "target_from_config",
    "write_outputs",
]
