"""The quick-start notebook executes top to bottom with a real kernel."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "quickstart.ipynb"


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_quickstart_notebook_runs(tmp_path):
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(notebook, timeout=240, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs)
    assert any("bit-identical" in o.get("text", "") for o in outputs)
    assert any(" s apart (nominal interval 30 s)" in o.get("text", "") for o in outputs)  # the frame pair
    # the paired raw/target/mask crops: each placed where the mask covers >= 10 %, and drawn
    (paired,) = [cell for cell in notebook.cells if cell.cell_type == "code" and "'where': 'mask'" in cell.source]
    text = "".join(o.get("text", "") for o in paired.outputs)
    fractions = [float(f) for f in text.split("foreground fraction per crop:")[1].split()]
    assert len(fractions) == 4 and min(fractions) >= 0.1, text
    assert any("image/png" in o.get("data", {}) for o in paired.outputs)
