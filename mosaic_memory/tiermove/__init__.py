"""Moving an instance's database between tiers (``migrate-tier``)."""
