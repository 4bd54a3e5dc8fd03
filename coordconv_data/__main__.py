"""`python -m coordconv_data` is the `coorddata` command."""

from .cli import main

if __name__ == "__main__":
    main(prog_name="coorddata")
