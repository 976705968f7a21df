"""Pure, vectorized Polars transforms from raw CloudTrail inputs to the normalized schema."""
