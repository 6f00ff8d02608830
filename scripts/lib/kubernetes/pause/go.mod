module zego-kafka-bridge/pause

go 1.22
