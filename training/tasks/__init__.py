"""Built-in tasks: each a LightningModule + LightningDataModule and its config (`<name>.yaml`).

Nothing about them is special to the runner: a user project is the same thing in its own
folder (see README, "Train your own model").
"""
