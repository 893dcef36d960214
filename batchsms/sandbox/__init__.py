"""A local emulation of the Fone Dynamics API, for trying the pipeline and for tests."""

from .server import FAULT_KINDS, Sandbox, SandboxState, parse_faults

__all__ = ["FAULT_KINDS", "Sandbox", "SandboxState", "parse_faults"]
