"""A local emulation of the Fone Dynamics API, for trying the pipeline and for tests."""

from .network import DEFAULT_AUTH_TOKEN, exposure_warning, is_loopback_host
from .server import FAULT_KINDS, ManualClock, Sandbox, SandboxState, parse_faults

__all__ = ["DEFAULT_AUTH_TOKEN", "FAULT_KINDS", "ManualClock", "Sandbox", "SandboxState", "exposure_warning",
           "is_loopback_host", "parse_faults"]
