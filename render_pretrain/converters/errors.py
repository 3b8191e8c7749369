"""The one exception type raised by the checkpoint converters."""


class ConversionError(ValueError):
    """A checkpoint cannot be converted as requested.

    Raised for an unknown layout pair or module, a checkpoint that lacks a
    requested module, sparse-conv weights whose layout cannot be decided or
    whose shapes fit no layout, and (in strict mode) any gap between the
    converted tensors and the target manifest. The message names the file or
    key and what was expected.
    """
