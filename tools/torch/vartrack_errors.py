#!/usr/bin/env python3
"""vartrack_errors.py: what kind of mistake ends a vartrack answer?  hsac
alone (no torch).

    vartrack_errors.py HSAC CSV [CSV ...]

Reads the rows of `hsac eval --task vartrack --csv FILE` (any fillers,
phrasings and lengths), makes each item's prompt again with `hsac gen-task`
(the row's seed, length, filler and phrasing) and looks at the first name
of the answer that the output gets wrong, in order.  That name is counted
as one of:

    exact          every name right, in order
    miscopied      the right name with 1 or 2 letters wrong (same length)
    chain order    another name of the asked chain
    other chain    a name of the prompt outside the asked chain
    not in prompt  anything else (more letters wrong, a missing name)

and, for the miscopied ones, which letters were wrong and whether a wrong
letter is the letter at the same place in the other name of the same
needle sentence (`Assign PPWNO to RICGA.` answered `PICGA`): by chance
about one in ten (a name shares its sentences with one or two others).  It prints the counts for all rows and per wording
variant (the CSV's `variant` column).  The model card
(examples/trained/ruler_hsa/README.md, session 49) has what it showed.

Exit status 0 when it ran, 2 on a usage error, 1 when a CSV cannot be read
or does not match gen-task's items (an answer name not in its prompt).
"""
import argparse
import collections
import csv
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vartrack_swap import gen_item  # noqa: E402

NAME = re.compile(r"\b[A-Z]{5}\b")
KINDS = ("exact", "miscopied", "chain order", "other chain", "not in prompt")


def mates(prompt, name):
    """The other names of the needle sentences that hold name."""
    out = set()
    for sentence in re.split(r"(?<=[.!?])\s", prompt):
        if name in sentence:
            out.update(n for n in NAME.findall(sentence) if n != name)
    return out


def classify(prompt, answers, output):
    """(kind, wrong letter places or None, whether a wrong letter is a
    needle-sentence mate's at the same place)"""
    got = [o.strip() for o in output.split(",")]
    names = set(NAME.findall(prompt))
    for i, want in enumerate(answers):
        o = got[i] if i < len(got) else ""
        if o == want:
            continue
        if len(o) == len(want):
            wrong = [j for j in range(len(want)) if o[j] != want[j]]
            if len(wrong) <= 2:
                m = mates(prompt, want)
                from_mate = any(any(n[j] == o[j] for n in m) for j in wrong)
                return "miscopied", tuple(wrong), from_mate
        if o in answers:
            return "chain order", None, False
        if o in names:
            return "other chain", None, False
        return "not in prompt", None, False
    return "exact", None, False


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("hsac")
    p.add_argument("csv", nargs="+", help="hsac eval --task vartrack --csv files")
    a = p.parse_args()
    counts = collections.Counter()
    by_variant = collections.defaultdict(collections.Counter)
    places = collections.Counter()
    from_mate = 0
    n = 0
    for path in a.csv:
        try:
            with open(path, newline="") as f:
                rows = list(csv.DictReader(f))
        except OSError as e:
            print("vartrack_errors.py: %s: %s" % (path, e.strerror), file=sys.stderr)
            return 1
        for line, row in enumerate(rows, 2):
            if row.get("task") != "vartrack":
                continue
            try:
                prompt = gen_item(a.hsac, int(row["seed"]), row["phrasing"], row["filler"],
                                  row["length"])["prompt"]
            except (RuntimeError, KeyError, OSError, ValueError) as e:
                print("vartrack_errors.py: %s:%d: %s" % (path, line, e), file=sys.stderr)
                return 1
            answers = [x.strip() for x in row["answer"].split(",")]
            missing = [x for x in answers if x not in prompt]
            if missing:
                print("vartrack_errors.py: %s:%d: the answer's %s is not in gen-task's prompt "
                      "for seed %s (not this hsac's item?)" % (path, line, missing[0],
                                                                row["seed"]), file=sys.stderr)
                return 1
            kind, wrong, mate = classify(prompt, answers, row["output"])
            n += 1
            counts[kind] += 1
            by_variant[row.get("variant") or "-"][kind] += 1
            if kind == "miscopied":
                places[wrong] += 1
                from_mate += mate
    if n == 0:
        print("vartrack_errors.py: no vartrack rows in %s" % ", ".join(a.csv), file=sys.stderr)
        return 1

    def line(label, c, total):
        return "%-14s %5d  " % (label, total) + "  ".join(
            "%s %d (%.0f%%)" % (k, c[k], 100.0 * c[k] / total) for k in KINDS)

    print("items          first wrong name")
    print(line("all", counts, n))
    for v in sorted(by_variant, key=lambda s: (len(s), s)):
        print(line("variant " + v, by_variant[v], sum(by_variant[v].values())))
    if counts["miscopied"]:
        print("miscopied: letters wrong (places from 0): " +
              ", ".join("%s %d" % ("+".join(map(str, w)), c) for w, c in places.most_common()))
        print("miscopied: a wrong letter is the needle sentence's other name's at the same "
              "place in %d of %d" % (from_mate, counts["miscopied"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
