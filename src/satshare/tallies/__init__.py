"""Counts of the operational tables kept as they change (the admin dashboard's): the
subscriptions active now with their subscribers and the MRR's sums, the subscriptions whose
paid time ends on each day (churn), and the payouts in each state."""
