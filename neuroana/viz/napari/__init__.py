"""napari plugin: readers for NWB files and FISBe samples, a labels writer, sample data, widgets.

A thin client of the public API (``neuroana.io``, the analyses); needs the ``napari`` extra.
The manifest is ``napari.yaml`` beside this file, registered through the ``napari.manifest`` entry
point.
"""
