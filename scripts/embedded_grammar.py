"""Grammaticality check of a masked LM: minimal pairs from templates, scored by pseudo-log-likelihood.

Each pair is a grammatical sentence and a minimally different ungrammatical one; the model gets the pair
right when the grammatical one has the higher pseudo-log-likelihood (PLL: the sum over tokens of
log p(token | the sentence with that token masked), Salazar et al., 2020). Phenomena (BLiMP-style, our own
templates and word lists):
  agreement_pp       subject-verb agreement across a prepositional phrase ("The key to the doors is/are ...")
  determiner_noun    determiner-noun number ("this book" / "this books", "these books" / "these book")
  anaphor            reflexive agreement with the subject ("The king saw himself" / "... herself")
  irregular_past     irregular past forms ("Yesterday she went" / "Yesterday she goed")
  word_order         two adjacent words swapped ("The man read the letter" / "The man the read letter")

Usage: embedded_grammar.py MODEL_DIR [--json OUT] [--per-phenomenon N]
"""
from __future__ import annotations

import argparse
import itertools
import random
import sys
from pathlib import Path

import torch

NOUNS = [("man", "men"), ("woman", "women"), ("boy", "boys"), ("girl", "girls"), ("king", "kings"),
         ("teacher", "teachers"), ("friend", "friends"), ("servant", "servants"), ("child", "children"),
         ("brother", "brothers"), ("sister", "sisters"), ("doctor", "doctors"), ("farmer", "farmers"),
         ("soldier", "soldiers"), ("lady", "ladies"), ("priest", "priests")]
THINGS = [("book", "books"), ("letter", "letters"), ("house", "houses"), ("door", "doors"), ("table", "tables"),
          ("road", "roads"), ("tree", "trees"), ("horse", "horses"), ("window", "windows"), ("garden", "gardens"),
          ("city", "cities"), ("river", "rivers"), ("field", "fields"), ("room", "rooms"), ("file", "files"),
          ("word", "words"), ("stone", "stones"), ("box", "boxes")]
# (singular verb phrase, plural verb phrase)
VERBS = [("is here", "are here"), ("was there", "were there"), ("has gone", "have gone"), ("is old", "are old"),
         ("was ready", "were ready"), ("is good", "are good"), ("seems happy", "seem happy"),
         ("lives in the city", "live in the city"), ("knows the way", "know the way"), ("was away", "were away")]
MALE = ["man", "boy", "king", "brother", "father", "son", "husband", "prince", "servant"]
FEMALE = ["woman", "girl", "queen", "sister", "mother", "daughter", "wife", "princess", "lady"]
REFLEXIVE_VERBS = ["saw", "hurt", "praised", "blamed", "loved", "found", "asked", "helped", "hid"]
IRREGULAR = [("went", "goed"), ("saw", "seed"), ("took", "taked"), ("came", "comed"), ("gave", "gived"),
             ("ate", "eated"), ("knew", "knowed"), ("wrote", "writed"), ("ran", "runned"), ("spoke", "speaked"),
             ("found", "finded"), ("told", "telled"), ("brought", "bringed"), ("thought", "thinked"),
             ("left", "leaved"), ("began", "beginned")]
MOTION_FRAMES = ["Yesterday the {n} {v} home.", "Then the {n} {v} away.", "Last year the {n} {v} to the city.",
                 "The {n} {v} back at night."]
OBJECT_FRAMES = ["Yesterday the {n} {v} {o}.", "Then the {n} {v} {o} again.", "Last year the {n} {v} {o} too.",
                 "The {n} {v} {o} at night."]
PAST_OBJECT = {"saw": "it", "took": "it", "gave": "it away", "ate": "it", "knew": "it", "wrote": "it",
               "found": "it", "told": "him", "brought": "it", "thought": "so", "left": "it", "began": "it",
               "spoke": "well"}
ORDER_SENTENCES = ["The {n} read the {t}.", "The old {n} opened the {t}.", "My {n} has a small {t}.",
                   "The {n} walked to the {t}.", "She gave the {n} a {t}.", "We saw the {n} near the {t}.",
                   "The {n} left the {t} at home.", "His {n} found the {t} in the room."]


def agreement_pp(rng):
    for (n_sg, n_pl), (t_sg, t_pl), (v_sg, v_pl) in itertools.product(NOUNS, THINGS, VERBS):
        attractor = rng.choice([t_sg, t_pl])
        prep = rng.choice(["near", "by", "with", "behind", "beside"])
        if rng.random() < 0.5:
            yield f"The {n_sg} {prep} the {attractor} {v_sg}.", f"The {n_sg} {prep} the {attractor} {v_pl}."
        else:
            yield f"The {n_pl} {prep} the {attractor} {v_pl}.", f"The {n_pl} {prep} the {attractor} {v_sg}."


def determiner_noun(rng):
    for (t_sg, t_pl), verb in itertools.product(NOUNS + THINGS, ["saw", "found", "liked", "wanted", "took",
                                                                  "knew", "met", "heard"]):
        if rng.random() < 0.5:
            det = rng.choice(["this", "that", "a"])
            yield f"I {verb} {det} {t_sg} today.", f"I {verb} {det} {t_pl} today."
        else:
            det = rng.choice(["these", "those", "many", "two"])
            yield f"I {verb} {det} {t_pl} today.", f"I {verb} {det} {t_sg} today."


def anaphor(rng):
    for verb in REFLEXIVE_VERBS:
        for noun in MALE:
            yield f"The {noun} {verb} himself.", f"The {noun} {verb} herself."
        for noun in FEMALE:
            yield f"The {noun} {verb} herself.", f"The {noun} {verb} himself."
        for n_sg, n_pl in NOUNS:
            yield f"The {n_pl} {verb} themselves.", f"The {n_pl} {verb} {rng.choice(['himself', 'herself'])}."


def irregular_past(rng):
    for (good, bad), (noun, _) in itertools.product(IRREGULAR, NOUNS):
        frames = OBJECT_FRAMES if good in PAST_OBJECT else MOTION_FRAMES
        for frame in frames:
            o = PAST_OBJECT.get(good, "")
            yield frame.format(n=noun, v=good, o=o), frame.format(n=noun, v=bad, o=o)


def word_order(rng):
    for frame, (noun, _), (thing, _) in itertools.product(ORDER_SENTENCES, NOUNS, THINGS):
        good = frame.format(n=noun, t=thing)
        words = good[:-1].split()
        i = rng.randrange(0, len(words) - 1)
        words[i], words[i + 1] = words[i + 1], words[i]
        bad = " ".join(words) + "."
        bad = bad[0].upper() + bad[1:].replace(" The ", " the ") if bad[0].islower() else bad
        if bad.lower() != good.lower():
            yield good, bad


PHENOMENA = {"agreement_pp": agreement_pp, "determiner_noun": determiner_noun, "anaphor": anaphor,
             "irregular_past": irregular_past, "word_order": word_order}


def minimal_pairs(per_phenomenon: int = 250, seed: int = 0) -> dict[str, list[tuple[str, str]]]:
    """{phenomenon: [(grammatical, ungrammatical), ...]}, `per_phenomenon` pairs each (fewer if the templates
    give fewer), deterministic for a seed."""
    out = {}
    for name, generate in PHENOMENA.items():
        rng = random.Random(f"{seed}/{name}")
        pairs = list(dict.fromkeys(generate(rng)))
        rng.shuffle(pairs)
        out[name] = pairs[:per_phenomenon]
    return out


@torch.no_grad()
def pseudo_log_likelihood(model, tokenizer, sentences: list[str]) -> list[float]:
    """Sum over each sentence's tokens of log p(token | sentence with that token masked)."""
    scores = []
    for sentence in sentences:
        ids = tokenizer(sentence, return_tensors="pt")["input_ids"][0]  # (T,)
        positions = torch.arange(1, len(ids) - 1)  # every token but <s> and </s>
        batch = ids.repeat(len(positions), 1)  # (P, T): row p masks position p
        batch[torch.arange(len(positions)), positions] = tokenizer.mask_token_id
        logits = model(input_ids=batch).logits[torch.arange(len(positions)), positions]  # (P, V)
        scores.append(logits.float().log_softmax(-1).gather(1, ids[positions, None]).sum().item())
    return scores


def score(model, tokenizer, pairs: dict[str, list[tuple[str, str]]]) -> dict:
    result = {}
    for name, items in pairs.items():
        good = pseudo_log_likelihood(model, tokenizer, [g for g, _ in items])
        bad = pseudo_log_likelihood(model, tokenizer, [b for _, b in items])
        result[name] = {"pairs": len(items), "accuracy": sum(g > b for g, b in zip(good, bad)) / len(items)}
    total = sum(r["pairs"] for r in result.values())
    result["all"] = {"pairs": total,
                     "accuracy": sum(r["accuracy"] * r["pairs"] for r in result.values()) / total}
    return result


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model_dir")
    ap.add_argument("--per-phenomenon", type=int, default=250)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--examples", action="store_true", help="print three pairs per phenomenon and exit")
    args = ap.parse_args(argv)
    pairs = minimal_pairs(args.per_phenomenon, args.seed)
    if args.examples:
        for name, items in pairs.items():
            print(name, len(items), items[:3])
        return 0
    from embedded_eval import load, report

    tokenizer, model = load(args.model_dir)
    return report(score(model, tokenizer, pairs), args.json)


if __name__ == "__main__":
    sys.exit(main())
