"""gdlab analysis: read campaign HDF5 files (layout in docs/hdf5-layout.md) and make reports.

Run ``/usr/bin/python3 -m analysis.report FILE.h5 --out DIR`` from the repository root.
"""
