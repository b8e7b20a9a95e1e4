"""Word-level vocabulary for PTB-style text.

Mikolov's PTB is already tokenised, lowercased and capped at 10k types (rare words
are ``<unk>``), so a word-level vocabulary built from the training split is exact:
9,999 word types plus ``<eos>`` make the standard 10k. Two technical symbols ride
along that never count as predicted tokens: ``<pad>`` (batch filler) and ``<bos>``
(the decoder's first input, and the encoder's pooling position, like BERT's [CLS]).
"""

from __future__ import annotations

from collections import Counter
from typing import Iterable, Sequence

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
SPECIALS = (PAD, BOS, EOS, UNK)


class Vocab:
    """Bidirectional word <-> id map; ids 0..3 are the specials in `SPECIALS` order."""

    def __init__(self, words: Sequence[str]):
        if tuple(words[:len(SPECIALS)]) != SPECIALS:
            raise ValueError(f"a Vocab must start with {SPECIALS}")
        if len(set(words)) != len(words):
            raise ValueError("duplicate words in vocabulary")
        self.itos = list(words)
        self.stoi = {w: i for i, w in enumerate(self.itos)}

    pad_id = property(lambda self: self.stoi[PAD])
    bos_id = property(lambda self: self.stoi[BOS])
    eos_id = property(lambda self: self.stoi[EOS])
    unk_id = property(lambda self: self.stoi[UNK])

    def __len__(self) -> int:
        return len(self.itos)

    @classmethod
    def build(cls, sentences: Iterable[Sequence[str]], max_words: int | None = None) -> "Vocab":
        """Most frequent words first (ties broken alphabetically, so the result is deterministic)."""
        counts = Counter(w for s in sentences for w in s if w not in SPECIALS)
        ranked = sorted(counts, key=lambda w: (-counts[w], w))
        if max_words is not None:
            ranked = ranked[:max_words]
        return cls(list(SPECIALS) + ranked)

    def encode(self, tokens: Sequence[str], add_eos: bool = True) -> list[int]:
        """Words -> ids, unknown words -> ``<unk>``, plus a closing ``<eos>``."""
        ids = [self.stoi.get(w, self.unk_id) for w in tokens]
        return ids + [self.eos_id] if add_eos else ids

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Ids -> words, stopping at the first ``<eos>`` and dropping ``<pad>``/``<bos>``."""
        out = []
        for i in ids:
            i = int(i)
            if i == self.eos_id:
                break
            if i in (self.pad_id, self.bos_id):
                continue
            out.append(self.itos[i])
        return out

    def to_text(self, ids: Iterable[int]) -> str:
        return " ".join(self.decode(ids))
