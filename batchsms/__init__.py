"""batchsms: a contact sheet in, correct SMS messages out, each sent exactly once."""

__version__ = "0.1.0"
