"""Workers: the Huey consumer, the supervisor of each training, and the training process."""
