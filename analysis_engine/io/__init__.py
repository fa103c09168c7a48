"""The only place in the engine that reads or writes files.

One module per format family: ``hexitec`` (event lists and raw frames), ``spectra`` (per-pixel
histograms written by ``events``), ``nxtomo`` (NeXus tomography and reconstructions),
``tables`` (cycling and EIS CSV), ``common`` (atomic outputs, volume arguments) and ``sniff``
(format detection and validation of uploaded files).
"""

from analysis_engine.io.common import atomic_output, open_hdf5, read_array, write_hdf5

__all__ = ["atomic_output", "open_hdf5", "read_array", "write_hdf5"]
