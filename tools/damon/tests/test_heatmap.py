# SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
"""damon report heatmap: the text form has the rows and digits a known
record calls for; the PNG is a valid PNG of the size asked for (every chunk's
CRC, the image data inflating to exactly its rows), the hot part drawn hotter;
the SVG parses as XML with labelled axes. A real workload's record too."""

import json
import os
import re
import struct
import sys
import zlib
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import check, damon, finish, need_uffd_wp, record, tmpdir  # noqa: E402

MiB = 1 << 20


def fixture(path):
    """Ten snapshots of 100 ms over [0, 4 MiB): the lowest MiB always fully
    accessed, the next one half the time, the rest never."""
    snaps = []
    for i in range(10):
        regions = [(0, MiB, 20), (MiB, 2 * MiB, 10), (2 * MiB, 4 * MiB, 0)]
        snaps.append({"start_time": i * 10**8, "end_time": (i + 1) * 10**8,
                      "regions": [{"start": s, "end": e,
                                   "nr_accesses": {"samples": n, "percent": None},
                                   "age": {"usec": None, "aggr_intervals": i}}
                                  for s, e, n in regions]})
    rec = [{"kdamond_idx": 0, "context_idx": 0,
            "intervals": {"sample_us": 5000, "aggr_us": 100000, "ops_update_us": 1000000},
            "scheme_idx": None, "target_id": 0, "scheme_filters": [], "snapshots": snaps,
            "data_source": "unknown"}]
    with open(path, "w") as f:
        json.dump(rec, f)


def read_png(path):
    """(width, height, rows of RGB tuples), checking what a PNG reader checks."""
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "no PNG signature"
    pos, idat, ihdr = 8, b"", None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        crc, = struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])
        assert zlib.crc32(kind + body) == crc, f"bad CRC in {kind}"
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
        if kind == b"IEND":
            break
    w, h, depth, ctype, _, _, interlace = ihdr
    assert (depth, ctype, interlace) == (8, 2, 0), f"not 8-bit RGB: {ihdr}"
    raw = zlib.decompress(idat)
    assert len(raw) == h * (1 + 3 * w), "image data is not the rows of the header's size"
    rows, prev = [], bytearray(3 * w)
    for y in range(h):
        ftype, line = raw[y * (1 + 3 * w)], bytearray(raw[y * (1 + 3 * w) + 1:(y + 1) * (1 + 3 * w)])
        for i in range(len(line)):  # the PNG filters
            a = line[i - 3] if i >= 3 else 0
            b, c = prev[i], prev[i - 3] if i >= 3 else 0
            if ftype == 1:
                line[i] = (line[i] + a) & 255
            elif ftype == 2:
                line[i] = (line[i] + b) & 255
            elif ftype == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif ftype == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append([tuple(line[i:i + 3]) for i in range(0, len(line), 3)])
        prev = line
    return w, h, rows


def main():
    d = tmpdir()
    fx = os.path.join(d, "fixture.json")
    fixture(fx)

    # text: 4 rows of a MiB each, 10 columns of a snapshot each
    p = damon("report", "heatmap", "-i", fx, "--resol", "10", "4", "--draw_range", "all")
    rows = [line for line in p.stdout.splitlines() if re.match(r"^0x[0-9a-f]+ \|", line)]
    cells = [line.split("|")[1] for line in rows]
    check(p.returncode == 0 and len(rows) == 4 and all(len(c) == 10 for c in cells),
          "text heatmap: --resol 10 4 gives 4 rows of 10 cells", p.stdout)
    check(cells == ["." * 10, "." * 10, "5" * 10, "9" * 10],
          "text heatmap: top (high addresses) never accessed, then 50 % ('5'), the lowest "
          "MiB 100 % ('9')", cells)
    check(rows[-1].startswith("0x00000000000000 |") and "time (x) by address" in p.stdout,
          "text heatmap: rows labelled with their addresses, axes named")
    p = damon("report", "heatmap", "-i", fx, "--resol", "10", "4",
              "--address_range", str(MiB), str(2 * MiB))
    cells = [line.split("|")[1] for line in p.stdout.splitlines() if " |" in line]
    check(cells == ["5" * 10] * 4, "text heatmap: --address_range draws that range only", cells)

    png, svg = os.path.join(d, "h.png"), os.path.join(d, "h.svg")
    p = damon("report", "heatmap", "-i", fx, "-o", png, "--size", "640x400")
    if p.returncode == 1 and "without libpng" in p.stderr:
        print("note: built without libpng: PNG refused as documented")
        check(not os.path.exists(png), "no PNG file is left")
    else:
        check(p.returncode == 0, "PNG written", p.stderr)
        try:
            w, h, px = read_png(png)
            ok = True
        except (AssertionError, struct.error, zlib.error) as e:
            ok, w, h, px = str(e), 0, 0, []
        check(ok is True and (w, h) == (640, 400), "a valid PNG of the size asked (640x400)",
              (ok, w, h))
        if px:
            # plot area: x from 130, y from 40, 440 x 310 pixels; the lowest
            # MiB is its bottom quarter, the unaccessed half its top half
            hot, cold = px[40 + 300][130 + 200], px[40 + 50][130 + 200]
            check(sum(hot) > sum(cold) + 300, "the hot part is drawn brighter than the cold",
                  (hot, cold))
            label = [px[y][x] for y in range(360, 380) for x in range(300, 360)]
            check(any(c == (0, 0, 0) for c in label), "the time axis has its label drawn")
    p = damon("report", "heatmap", "-i", fx, "-o", svg)
    try:
        root = ET.parse(svg).getroot()
        texts = [t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text")]
        rects = list(root.iter("{http://www.w3.org/2000/svg}rect"))
        ok = root.get("width") == "900" and root.get("height") == "540"
    except (ET.ParseError, OSError) as e:
        ok, texts, rects = str(e), [], []
    check(p.returncode == 0 and ok is True, "the SVG parses as XML, 900x540 by default", ok)
    check("time (s)" in texts and "address (bytes)" in texts and "access rate" in texts
          and any(t.startswith("0x") for t in texts) and "100%" in texts,
          "the SVG's axes are labelled with units, ticks and the colour scale", texts[:12])
    check(len(rects) >= 5, "the SVG draws the cells", len(rects))
    p = damon("report", "heatmap", "-i", fx, "-o", os.path.join(d, "h.gif"))
    check(p.returncode == 2, "-o with another extension: usage, exit 2")

    # a real record: the workload's hot part is the hottest span
    need_uffd_wp()
    out = os.path.join(d, "real.json")
    _, info = record(out, seconds=2, size=32, hot=8)
    p = damon("report", "heatmap", "-i", out, "--resol", "40", "16")
    m = re.search(r"address: 0x([0-9a-f]+)-0x([0-9a-f]+)", p.stdout)
    a0, a1 = (int(m[1], 16), int(m[2], 16)) if m else (0, 0)
    hs, he = info["hot"] if info else (1, 0)
    check(p.returncode == 0 and a0 <= hs and a1 >= he,
          "a real record's heatmap covers the workload's hot part", (hex(a0), hex(a1)))
    p = damon("report", "heatmap", "-i", out, "-o", svg)
    check(p.returncode == 0 and ET.parse(svg).getroot() is not None, "its SVG parses")
    finish()


main()
