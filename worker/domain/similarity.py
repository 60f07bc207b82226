"""String similarity for matching: Jaro and Jaro-Winkler, and the threshold at which a name is close.

Pure: no I/O.
"""

from __future__ import annotations

# Jaro-Winkler similarity at or above which a (last) name counts as "close" (a typo or variant
# spelling: Jansen/Janssen 0.97, Jansen/Hansen 0.89).
CLOSE_NAME_SIMILARITY = 0.92


def jaro(a: str, b: str) -> float:
    """Jaro similarity in [0, 1]: matching characters within a window, penalised for transpositions."""
    if a == b:
        return 1.0
    if not a or not b:
        return 0.0
    window = max(0, max(len(a), len(b)) // 2 - 1)
    a_matched = [False] * len(a)
    b_matched = [False] * len(b)
    matches = 0
    for i, char in enumerate(a):
        for j in range(max(0, i - window), min(len(b), i + window + 1)):
            if not b_matched[j] and b[j] == char:
                a_matched[i] = b_matched[j] = True
                matches += 1
                break
    if matches == 0:
        return 0.0
    a_seq = [c for c, m in zip(a, a_matched, strict=True) if m]
    b_seq = [c for c, m in zip(b, b_matched, strict=True) if m]
    transpositions = sum(x != y for x, y in zip(a_seq, b_seq, strict=True)) / 2
    return (matches / len(a) + matches / len(b) + (matches - transpositions) / matches) / 3


def jaro_winkler(a: str, b: str, prefix_scale: float = 0.1, boost_threshold: float = 0.7) -> float:
    """Jaro-Winkler similarity: Jaro boosted for a common prefix of up to 4 characters (Winkler 1990),
    only when the Jaro similarity is already above `boost_threshold`."""
    similarity = jaro(a, b)
    if similarity <= boost_threshold:
        return similarity
    prefix = 0
    for x, y in zip(a[:4], b[:4], strict=False):
        if x != y:
            break
        prefix += 1
    return similarity + prefix * prefix_scale * (1 - similarity)
