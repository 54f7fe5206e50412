"""metafor's BCG vaccine trials (Colditz et al. 1994; metadat's ``dat.bcg``), read from ``tests/data/bcg.csv``: the
one copy of the data in the tests (written from R by ``tests/reference/make_bcg_cli_reference.R``).

The log risk ratios and their variances are computed here from the 2x2 tables by the textbook formulas
(yi = log[(ai/n1i)/(ci/n2i)], vi = 1/ai − 1/n1i + 1/ci − 1/n2i; Borenstein et al. 2009, ch. 5), not by metabac, so
that the tests fed with them do not take their input from the code they test.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

BCG_CSV = Path(__file__).resolve().parents[1] / "data" / "bcg.csv"
BCG = pd.read_csv(BCG_CSV)

# tpos, tneg, cpos, cneg of dat.bcg: vaccinated with and without TB, controls with and without TB
TPOS, TNEG, CPOS, CNEG = (BCG[column].to_numpy() for column in ("ai", "bi", "ci", "di"))
YEARS = BCG["year"].tolist()

_N1, _N2 = TPOS + TNEG, CPOS + CNEG
BCG_YI = np.log((TPOS / _N1) / (CPOS / _N2))
BCG_VI = 1 / TPOS - 1 / _N1 + 1 / CPOS - 1 / _N2


def bcg_xlsx(path: Path) -> Path:
    """An Excel copy of bcg.csv at ``path``: numbers as numbers, text as text (as a spreadsheet program would save
    it)."""
    import openpyxl

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "BCG"
    sheet.append(list(BCG.columns))
    for row in BCG.itertuples(index=False):
        sheet.append([value.item() if hasattr(value, "item") else value for value in row])
    workbook.save(path)
    return path
