import random

from renewlm.data.bpe import BLOCKED, continue_merges, pack


def plain_bpe(words: list[list[int]], freqs: list[int], strings: dict[int, str], add: int, first_id: int, min_count: int = 2):
    """BPE training written the obvious way: recount every adjacent pair each step, take the most frequent
    (ties: the smallest (left, right)), merge it left to right in every word."""
    words = [list(w) for w in words]
    vocab = {s: i for i, s in strings.items()}
    pairs, new = [], {}
    while len(new) < add:
        counts = {}
        for w, f in zip(words, freqs):
            for a, b in zip(w, w[1:]):
                if a >= 0 and b >= 0:
                    counts[(a, b)] = counts.get((a, b), 0) + f
        if not counts:
            break
        (a, b), count = min(counts.items(), key=lambda item: (-item[1], item[0]))
        if count < min_count:
            break
        merged = strings[a] + strings[b]
        if merged not in vocab:
            vocab[merged] = first_id + len(new)
            strings[vocab[merged]] = new[vocab[merged]] = merged
        pairs.append((a, b))
        for w in words:
            i = 0
            while i < len(w) - 1:
                if w[i] == a and w[i + 1] == b:
                    w[i : i + 2] = [vocab[merged]]
                i += 1
    return pairs, new


def test_the_vectorised_loop_learns_what_plain_bpe_learns():
    rng = random.Random(0)
    alphabet = {i: c for i, c in enumerate("abcde")}  # few symbols: long runs like "a a a" test the overlap rule
    words = [[rng.randrange(5) for _ in range(rng.randint(1, 9))] for _ in range(400)]
    words[3] = [0, 0, 0, 0, 0]
    words[7] = [1, BLOCKED, 1]  # a blocked symbol joins no pair
    freqs = [rng.randint(1, 20) for _ in words]
    flat, weight = pack(words, freqs)
    strings = dict(alphabet)
    learned = continue_merges(flat, weight, {s: i for i, s in alphabet.items()}, strings, add=40, first_id=5)
    want_pairs, want_tokens = plain_bpe(words, freqs, dict(alphabet), add=40, first_id=5)
    assert learned.pairs == want_pairs and learned.tokens == want_tokens
    assert len(learned.tokens) == 40 and all(a != BLOCKED and b != BLOCKED for a, b in learned.pairs)


def test_merges_stop_when_no_pair_occurs_twice_and_reserved_strings_are_skipped():
    strings = {0: "x", 1: "y", 2: "z"}
    flat, weight = pack([[0, 1], [1, 2], [0, 2]], [5, 1, 3])
    learned = continue_merges(flat, weight, {s: i for i, s in strings.items()}, dict(strings), add=10, first_id=3, reserved=frozenset({"xy"}))
    assert learned.pairs == [(0, 2)] and learned.tokens == {3: "xz"}  # xy is reserved, yz occurs once
