"""Synthetic digest posts for the benchmarks: Telegram-export shaped, ru/en/zh mixed."""

from __future__ import annotations

import json
import random
from pathlib import Path

RU = ("модель обучение внимание трансформер регуляризация дропаут голова статья авторы результат "
      "датасет перевод классификация эксперимент слой градиент оптимизация текст задача метод").split()
EN = ("model training attention transformer regularization dropout head paper authors result dataset "
      "translation classification experiment layer gradient optimization text task method latent").split()
ZH = ["模型", "训练", "注意力", "正则化", "论文", "作者", "实验", "数据集", "分类", "方法", "文本", "隐变量"]


def _vocabulary(base: list[str], syllables: str, size: int, seed: int) -> tuple[list[str], list[float]]:
    """`base` words first, then made-up words; Zipf weights (1/rank) as in real text."""
    rng = random.Random(seed)
    sylls = syllables.split()
    words = list(base)
    while len(words) < size:
        w = "".join(rng.choice(sylls) for _ in range(rng.randint(2, 4)))
        if w not in words:
            words.append(w)
    return words, [1.0 / (rank + 1) for rank in range(len(words))]


RU_VOCAB = _vocabulary(RU, "ка ло ми на ре то ве ст пр об ни ер ан ов ли ра ко де ть ся", 5000, 1)
EN_VOCAB = _vocabulary(EN, "ka lo mi na re to ve st pr ob ni er an ov li ra co de th ing", 5000, 2)
TAGS = [f"tag{i}" for i in range(500)] + ["nlp", "vae", "cv", "rl", "регуляризация", "трансформеры"]


def post_text(rng: random.Random, i: int) -> str:
    lang = rng.random()
    if lang < 0.05:
        words = "".join(rng.choice(ZH) for _ in range(rng.randint(20, 60)))
    else:
        vocab, weights = RU_VOCAB if lang < 0.55 else EN_VOCAB
        words = " ".join(rng.choices(vocab, weights, k=rng.randint(25, 80)))
    arxiv = f"https://arxiv.org/abs/{rng.randint(15, 24):02d}{rng.randint(1, 12):02d}.{rng.randint(0, 99999):05d}"
    tags = " ".join("#" + rng.choice(TAGS) for _ in range(rng.randint(0, 3)))
    return f"Post {i}: {words}\n{arxiv}\n{tags}"


def export(n: int, seed: int = 0) -> dict:
    rng = random.Random(seed)
    messages = []
    for i in range(1, n + 1):
        text = post_text(rng, i)
        entities = [{"type": "plain", "text": text}]
        messages.append({"id": i, "type": "message", "date": "2021-03-04T05:06:07",
                         "date_unixtime": str(1614834367 + i * 60), "from": "Bench", "from_id": "channel7",
                         "text": text, "text_entities": entities})
    return {"name": "Bench channel", "type": "public_channel", "id": 7, "messages": messages}


def write_export(path: Path, n: int, seed: int = 0) -> Path:
    path.write_text(json.dumps(export(n, seed), ensure_ascii=False), encoding="utf-8")
    return path
