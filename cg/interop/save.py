"""Writing an import: the sidecar .npz first, then the graph file that names it, each replaced
only once it is whole (cg/files.py). The graph file is written in cg's canonical form (cg fmt)."""

from __future__ import annotations

import io
import os
import zipfile

import numpy as np

from cg.files import write_output
from cg.fmt.write import format_text
from cg.interop.read import Imported


def save_import(imported: Imported, output: str) -> list[str]:
    """Write `output` (the graph file) and its sidecar; the names of the files written."""
    sidecar = os.path.splitext(output)[0] + ".npz"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as npz:  # np.savez's layout, with no key it could mistake for an option
        for key, value in imported.arrays.items():
            with npz.open(f"{key}.npy", "w") as member:
                np.lib.format.write_array(member, np.asarray(value), allow_pickle=False)  # plain numbers only
    existed = os.path.exists(sidecar)
    write_output(buffer.getvalue(), sidecar)
    try:
        text = format_text(imported.text(os.path.basename(sidecar)), output)
    except Exception:
        if not existed:  # nothing is left behind by an import that failed
            os.unlink(sidecar)
        raise
    write_output(text, output)
    return [output, sidecar]
