from smsgate.cli.entry import main

main()
