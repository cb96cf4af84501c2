"""Training P2PNet: augmentation, the step-keyed crop dataset, matcher, loss, the Trainer and what it
records. Data reading and scoring shared with evaluation live in :mod:`crowdwatch.data`.

``crowdwatch train CONFIG`` is :mod:`crowdwatch.commands.train`.
"""
