"""The browser's ZIP writer (web/static/js/export/zip.js) checked by Python's zipfile.

tests/js/make-zip.mjs writes an archive with it; zipfile must list the same
names (UTF-8), dates and bytes, and its CRC-32 check of every entry must pass.
"""

from __future__ import annotations

import shutil
import subprocess
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tests" / "js" / "make-zip.mjs"


def test_python_opens_the_browsers_zip(tmp_path: Path) -> None:
    node = shutil.which("node")
    assert node is not None, "node (>= 20) is required for the JS zip writer"
    out = tmp_path / "export.zip"
    done = subprocess.run(
        [node, str(SCRIPT), str(out)], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    with zipfile.ZipFile(out) as archive:
        assert archive.testzip() is None  # every entry's CRC-32 matches its bytes
        infos = archive.infolist()
        assert [i.filename for i in infos] == [
            "README.txt",
            "data.json",
            "files/photo élève.jpg",
            "files/empty",
        ]
        assert all(i.flag_bits & 0x800 and i.compress_type == zipfile.ZIP_STORED for i in infos)
        assert all(i.date_time == (2026, 11, 29, 12, 34, 56) for i in infos)
        assert archive.read("README.txt").decode() == "Ce dossier contient vos données.\n"
        assert archive.read("data.json").decode() == '{"text":"Sortie jeudi 🚌"}'
        assert archive.read("files/photo élève.jpg") == bytes((i * 7) & 0xFF for i in range(70000))
        assert archive.read("files/empty") == b""
        assert infos[2].external_attr >> 16 == 0o100644
