"""README's two pictures of a diagnosis page: its overview and fix, and its animated skeletons.

    python scripts/report_screenshots.py DIAG/report.html --out docs/

Opens the page in headless Chromium (the test suite's CDP client, ``tests/browser.py``) and
writes ``report_overview.png`` (the overview and the suggested fix with its command) and
``report_animation.png`` (the animated decoded skeletons, part-way through the clip).
"""

from __future__ import annotations

import argparse
import base64
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from browser import Browser, find_chromium  # noqa: E402 - the tests' CDP client


def region(page: Browser, first: str, last: str) -> bytes:
    """PNG bytes of the page from the top of ``first`` to the bottom of ``last``."""
    box = page.evaluate(
        "(() => { const a = document.querySelector(%r).getBoundingClientRect(), "
        "b = document.querySelector(%r).getBoundingClientRect(); "
        "return [a.x, a.y + window.scrollY, Math.max(a.width, b.width), "
        "b.bottom - a.top]; })()" % (first, last))
    clip = {"x": box[0], "y": box[1], "width": box[2], "height": box[3], "scale": 1}
    data = page.call("Page.captureScreenshot", format="png", clip=clip,
                     captureBeyondViewport=True)["data"]
    return base64.b64decode(data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("report", type=Path)
    parser.add_argument("--out", type=Path, default=Path("docs"))
    args = parser.parse_args()
    chromium = find_chromium()
    if chromium is None:
        raise SystemExit("no Chromium found (apt-get install chromium)")
    args.out.mkdir(parents=True, exist_ok=True)
    with Browser(chromium) as page:
        page.open(args.report)
        time.sleep(1.0)
        page.evaluate("document.body.style.background = 'white'")
        (args.out / "report_overview.png").write_bytes(region(page, "#overview", "#fix"))
        time.sleep(1.5)  # let the animation move on from its first frame
        (args.out / "report_animation.png").write_bytes(page.screenshot("#animations"))
    if page.errors:
        raise SystemExit("the page logged errors: " + "; ".join(page.errors))
    print(f"wrote {args.out / 'report_overview.png'} and {args.out / 'report_animation.png'}")


if __name__ == "__main__":
    main()
