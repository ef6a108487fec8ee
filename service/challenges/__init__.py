"""The class challenge: who trains the best MNIST net under a few rules, ranked fairly.

rules.py       what an entry may be, checked at submission, each refusal naming its rule
scoring.py     the test set split into a public and a private half by a secret permutation
leaderboard.py one row per person: their best entry, public rank while open, private after
"""
