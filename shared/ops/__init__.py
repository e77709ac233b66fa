"""What operators look at and do: the figures and actions shared by `syncctl` and the console."""
