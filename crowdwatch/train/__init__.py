"""Training and measuring P2PNet: datasets, augmentation, matcher, loss and the training loop.

``crowdwatch train CONFIG`` is :func:`crowdwatch.train.loop.train_command`.
"""
