"""Money: amounts as Decimal, currency precision, and exchange rates between currencies."""
