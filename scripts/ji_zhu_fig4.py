"""Ji & Zhu (2020) fig4: `python scripts/ji_zhu_fig4.py [--quick] [--out DIR]`.

Full size by default (CPU, float64; runs unchanged on a GPU, where JAX picks it up), `--quick` for a
small CPU run. Resumable: rerun the same command to continue. Same as `ntkd reproduce ji-zhu-fig4`.
"""
import sys

from ntkd.cli import main

if __name__ == "__main__":
    sys.exit(main(["reproduce", "ji-zhu-fig4", *sys.argv[1:]]))
