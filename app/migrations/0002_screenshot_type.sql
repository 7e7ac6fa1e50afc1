-- The media type of an inquiry's screenshot, sniffed at upload.
ALTER TABLE inquiries ADD COLUMN screenshot_type TEXT;
