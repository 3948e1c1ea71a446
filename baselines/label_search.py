"""Constrained label choice that runs as few tokens as possible and picks the label full scoring picks.

Full scoring runs every label's tokens after every prompt. Three exact savings:

- shared prefix: the tokens every prompt starts with (chat header, instructions, the label list, a
  fixed few-shot block) run once per call; each group of prompts continues from a copy of that cache.
- label trie: labels that begin with the same tokens share those positions. The prompts of a group
  and their trie nodes are packed into one sequence whose attention mask lets each token see only the
  shared prefix, its own prompt and its own ancestors (tree attention), so no cache is repeated per
  label, and only positions whose next-token distribution is needed reach the LM head.
- branch and bound: a label's log-likelihood is a sum of log-softmax terms, each <= 0 (also in floating
  point: x - logsumexp(x) <= x - max(x) <= 0), so a node's partial sum bounds every label below it.
  Nodes are expanded best bound first, and the search stops when no open node can reach the best
  complete label; ties keep the lowest label index, as max() over a full list does. With
  `every_label` nothing is pruned and every label gets its score.
"""

from __future__ import annotations

import copy
import functools
import heapq
from dataclasses import dataclass, field

_WIDTH = 4
"""Fewest open nodes expanded per prompt per forward pass."""
_FILL = 64
"""Open nodes per forward pass to aim for, shared among the prompts still searching: a pass costs ~50 positions'
worth whatever its size (the weights are read once per pass), so a prompt left searching alone (a flat
distribution: many labels within reach of the best) takes more of its nodes per pass, in fewer passes."""
_PACK_TOKENS = 512
"""Most tokens packed into one forward pass: the packed prompts' attention scores grow with tokens x context,
most of them masked, so long prompts go a few per pass."""
_LOGIT_BUDGET = 64 * 2**20
"""Most logits (floats) held at once: bounds memory when every label is scored."""


@dataclass
class Trie:
    """Token sequences as a prefix tree; node 0 is the root, every other node is one token."""

    token: list[int] = field(default_factory=lambda: [-1])
    depth: list[int] = field(default_factory=lambda: [0])
    parent: list[int] = field(default_factory=lambda: [-1])
    children: list[list[int]] = field(default_factory=lambda: [[]])
    ends: dict[int, list[int]] = field(default_factory=dict)
    """Node -> indices of the sequences that end there (duplicates share a node)."""

    @classmethod
    def build(cls, sequences: list[list[int]]) -> Trie:
        trie, index = cls(), {}
        for label, seq in enumerate(sequences):
            node = 0
            for tok in seq:
                if (node, tok) not in index:
                    index[node, tok] = len(trie.token)
                    trie.token.append(tok)
                    trie.depth.append(trie.depth[node] + 1)
                    trie.parent.append(node)
                    trie.children.append([])
                    trie.children[node].append(index[node, tok])
                node = index[node, tok]
            trie.ends.setdefault(node, []).append(label)
        return trie


@dataclass
class _Item:
    """One prompt's search: known partial sums, open nodes, and where its tokens sit in the cache."""

    suffix: list[int]
    length: int
    n_labels: int
    start: int = 0
    bound: dict[int, float] = field(default_factory=lambda: {0: 0.0})
    open: list[tuple[float, int]] = field(default_factory=list)
    """Heap of (-bound, node) for nodes whose bound is known and whose children are not."""
    at: dict[int, int] = field(default_factory=dict)
    """Trie node -> its cache position, once it has been run."""
    best: tuple[float, int] = (float("-inf"), -1)
    scores: list[float | None] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.scores = [None] * self.n_labels

    def reach(self, trie: Trie, node: int, score: float) -> None:
        self.bound[node] = score
        for label in trie.ends.get(node, ()):
            self.scores[label] = score
            if score > self.best[0] or (score == self.best[0] and label < self.best[1]):
                self.best = (score, label)
        if trie.children[node] and node:  # the root is expanded by the prompt's own pass
            heapq.heappush(self.open, (-score, node))

    def take(self, n: int, prune: bool) -> list[int]:
        """Up to n open nodes, best bound first; with `prune`, only those that can still reach the best label."""
        out = []
        while self.open and len(out) < n:
            neg, node = heapq.heappop(self.open)
            if node in self.at:  # already run inside an only-child chain
                continue
            if prune and -neg < self.best[0]:
                self.open.clear()  # the heap's best cannot win: neither can the rest
                break
            out.append(node)
        return out


class _Pack:
    """Tokens of one forward pass, each with its position and the cache positions it may attend to."""

    def __init__(self, past: int, shared: int):
        self.past, self.shared = past, shared
        self.ids: list[int] = []
        self.positions: list[int] = []
        self.sees: list[tuple[int, list[tuple[int, int]]]] = []
        """Per run of tokens: (first index in the pack, spans of cache positions besides the shared prefix)."""
        self.keep: list[int] = []

    def __len__(self) -> int:
        return len(self.ids)

    def add(self, ids: list[int], first_position: int, sees: list[tuple[int, int]], keep_last: bool) -> int:
        """Append a causal run of tokens whose logits are kept (only the last one's with `keep_last`);
        returns the cache position of its first token."""
        at, first = self.past + len(self.ids), len(self.ids)
        self.sees.append((first, sees))
        self.ids += ids
        self.positions += range(first_position, first_position + len(ids))
        self.keep += [len(self.ids) - 1] if keep_last else range(first, len(self.ids))
        return at

    def mask(self, dtype):
        import torch

        m = len(self.ids)
        allowed = torch.zeros(m, self.past + m, dtype=torch.bool)
        allowed[:, : self.shared] = True
        bounds = [q for q, _ in self.sees] + [m]
        for (q0, spans), q1 in zip(self.sees, bounds[1:]):
            for a, b in spans:
                allowed[q0:q1, a:b] = True
            block = torch.ones(q1 - q0, q1 - q0, dtype=torch.bool).tril()
            allowed[q0:q1, self.past + q0 : self.past + q1] = block
        out = torch.zeros(1, 1, m, self.past + m, dtype=dtype)
        return out.masked_fill_(~allowed, torch.finfo(dtype).min)


def shared_prefix(prompts: list[list[int]]) -> int:
    """Length of the token prefix all prompts share, leaving each at least one token of its own."""
    first, limit = prompts[0], min(len(p) for p in prompts) - 1
    n = 0
    while n < limit and all(p[n] == first[n] for p in prompts):
        n += 1
    return n


def groups(order: list[int], encoded: list[list[int]], shared: int, size: int) -> list[list[int]]:
    """Consecutive prompts, at most `size` per group and (beyond the first) at most _PACK_TOKENS own tokens."""
    groups, tokens = [], 0
    for i in order:
        own = len(encoded[i]) - shared
        if not groups or len(groups[-1]) >= size or tokens + own > _PACK_TOKENS:
            groups.append([])
            tokens = 0
        groups[-1].append(i)
        tokens += own
    return groups


@functools.cache
def cache_keyword() -> str:
    """The models' KV-cache argument, also their output's field: `cache` in the transformers that renamed it (there
    `past_key_values` warns twice per call and is to be removed in 5.40), `past_key_values` before (>=4.50 supported)."""
    from dataclasses import fields

    from transformers.modeling_outputs import CausalLMOutputWithPast

    return "cache" if "cache" in {f.name for f in fields(CausalLMOutputWithPast)} else "past_key_values"


class LabelSearch:
    def __init__(self, model, labels: list[list[int]], every_label: bool = False):
        self.model, self.trie, self.n_labels = model, Trie.build(labels), len(labels)
        self.width = None if every_label else _WIDTH
        self.dtype = model.get_input_embeddings().weight.dtype
        self.device = model.get_input_embeddings().weight.device

    def _forward(self, pack: _Pack, cache):
        """Run a pack on top of `cache` (extended in place); log-softmax rows of its kept positions."""
        import torch

        out = self.model(
            input_ids=torch.tensor([pack.ids], device=self.device),
            position_ids=torch.tensor([pack.positions], device=self.device),
            attention_mask=pack.mask(self.dtype).to(self.device),
            **{cache_keyword(): cache}, use_cache=True,
            logits_to_keep=torch.tensor(pack.keep or [len(pack) - 1], device=self.device),
        )
        return torch.log_softmax(out.logits[0].float(), dim=-1).cpu(), out[cache_keyword()]

    def prefix_cache(self, prefix: list[int]):
        import torch

        if not prefix:
            return None
        ids = torch.tensor([prefix], device=self.device)
        return self.model(input_ids=ids, use_cache=True, logits_to_keep=1)[cache_keyword()]

    def score_group(self, prompts: list[list[int]], shared: int, cache) -> list[_Item]:
        """Search every prompt of a group (all starting with the `shared` prefix held in `cache`)."""
        trie = self.trie
        items = [_Item(p[shared:], len(p), self.n_labels) for p in prompts]
        cache = copy.deepcopy(cache)
        pack = _Pack(shared, shared)
        for it in items:
            it.start = pack.add(it.suffix, shared, [], keep_last=True)
        logp, cache = self._forward(pack, cache)
        past = shared + len(pack)
        for it, row in zip(items, logp):
            it.reach(trie, 0, 0.0)
            self._expand(it, 0, row)
        per_pass = max(1, min(_PACK_TOKENS, _LOGIT_BUDGET // logp.shape[-1]))
        while True:
            pack, owners = _Pack(past, shared), []
            searching = sum(1 for it in items if it.open)
            width = None if self.width is None else max(self.width, -(-_FILL // max(searching, 1)))
            for it in items:
                room = per_pass - len(pack)
                for node in it.take(room if width is None else min(width, room), width is not None):
                    run = self._run(node)
                    ancestors, up = [], trie.parent[node]
                    while up > 0:
                        ancestors.append((it.at[up], it.at[up] + 1))
                        up = trie.parent[up]
                    sees = [(it.start, it.start + len(it.suffix)), *ancestors]
                    at = pack.add([trie.token[n] for n in run], it.length + trie.depth[node] - 1, sees, keep_last=False)
                    for offset, n in enumerate(run):
                        it.at[n] = at + offset
                        owners.append((it, n))
            if not owners:
                return items
            logp, cache = self._forward(pack, cache)
            past += len(pack)
            for (it, node), row in zip(owners, logp):
                self._expand(it, node, row)

    def _run(self, node: int) -> list[int]:
        """The node and its only-child chain: a label's tokens below a fork are needed whenever the fork's
        are, so they ride in the same pass instead of one pass per token."""
        run, kids = [node], self.trie.children
        while len(kids[run[-1]]) == 1 and kids[kids[run[-1]][0]]:
            run.append(kids[run[-1]][0])
        return run

    def _expand(self, it: _Item, node: int, row) -> None:
        trie = self.trie
        kids = trie.children[node]
        lps = row[[trie.token[k] for k in kids]].tolist()
        for kid, lp in zip(kids, lps):
            it.reach(trie, kid, it.bound[node] + lp)
