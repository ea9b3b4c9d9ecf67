from smsgate.cli.main import main

main()
