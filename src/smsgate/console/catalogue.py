ZH_TEXT: dict[str, str] = {}
