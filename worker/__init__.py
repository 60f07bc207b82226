"""nmbrs-sync: keeps RegiTijd and RegiCRM in step with Nmbrs."""
