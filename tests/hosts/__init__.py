"""URL confs and settings of imagined host projects, for the tests that mount Tempora as a host would."""
