"""Read models: the queries the Streamlit app and the Telegram bot show (one copy of each), over
the marts (`oddly.warehouse.reader.MartsReader`), the app database and MLflow. Aggregation happens
in SQL; these return small DataFrames ready to display."""
